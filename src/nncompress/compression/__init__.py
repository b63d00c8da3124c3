"""Compression methods: regularizers now; saliencies, masks and pruning schedules plug in here."""
