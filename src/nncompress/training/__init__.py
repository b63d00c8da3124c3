"""Training a population with Lightning: the module, its metrics and protocols."""
