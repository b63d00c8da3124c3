"""Fitting a job's population: its data, model, callbacks and Trainer, all built from config nodes, then trained
and tested."""
import logging
import time
from dataclasses import dataclass

import torch

from ..compression.pruning import Pruning
from ..config import Parts
from ..data.module import PopulationData
from ..models.base import PopulationModel
from ..population import Population
from ..training.checkpoint import Checkpoints
from ..training.metrics import replica_accuracy
from ..training.module import PopulationClassifier
from ..training.progress import quiet_lightning
from ..training.pruning import PruningCallback
from ..training.quantization import quantize
from .plan import Plan

log = logging.getLogger(__name__)


@dataclass
class Fitted:
    """A trained and tested population: what recording reads."""

    population: Population
    model: PopulationModel
    module: PopulationClassifier
    trainer: object
    pruning: Pruning | None  # None for a method that does not prune
    checkpoints: Checkpoints
    wall_s: float


def fit(parts: Parts, plan: Plan, population: Population, logger, parallel: tuple[int, int] | None = None) -> Fitted:
    """`parallel`: (the job's number, jobs at once) when its sweep runs jobs side by side (hydra_job.parallel)."""
    quiet_lightning()
    names, protocol, run = population.datasets, parts.protocol, parts.run
    data = PopulationData([plan.splits[d] for d in names], protocol.batch_size, population.seeds("data"),
                          run.eval_batch_size, run.precision, [names.index(d) for d in population.stream_datasets])  # fmt: skip
    model = parts.model.build(population, data.features, protocol)
    pruning = parts.pruning and parts.pruning(saliency=parts.saliency, population=population, run_dir=plan.run_dir,
                                              ratio_sizes_model=type(parts.model).takes_ratio)  # fmt: skip
    epochs = pruning.max_epochs if pruning else protocol.epochs
    # The authors' update w <- w - lambda * eta * R'(w) / n, n the training-set size.
    regularizer = None
    if parts.regularizer and protocol.reg_lambda:
        regularizer = parts.regularizer(strength=protocol.reg_lambda / data.n_train)
    restarts = bool(pruning) and pruning.saliency.restarts  # a learning-rate schedule per replica (method=lth)
    module = PopulationClassifier(model, population, protocol, epochs, regularizer, run.cuda_graph, run.compact,
                                  restarts)  # fmt: skip
    keys = [plan.key(r) for r in population.replicas]
    # quantizing, the last epoch is checkpointed too: a job stopped during the stage resumes there
    checkpoints = Checkpoints(plan.store.checkpoint_path(keys), keys, run.checkpoint_every_s, at_end=bool(parts.quantize))
    made = callbacks(parts, plan, population, model, pruning, parallel) + [checkpoints]
    trainer = parts.trainer(max_epochs=epochs, logger=logger, callbacks=made, default_root_dir=plan.run_dir,
                            limit_val_batches=1.0 if data.has("val") else 0)  # fmt: skip
    resume = checkpoints.resumable()
    if resume:
        log.info(f"resuming from epoch {checkpoints.epochs} of {epochs}: the checkpoint {resume}")
    start = time.time()
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    if parts.quantize:
        quantized(module, data, population, parts.quantize, trainer, checkpoints)
    trainer.test(module, datamodule=data, verbose=False)
    return Fitted(population, model, module, trainer, pruning, checkpoints, time.time() - start)


def quantized(module: PopulationClassifier, data: PopulationData, population: Population, quantizer, trainer,
              checkpoints: Checkpoints) -> None:  # fmt: skip
    """The trained population quantized (training/quantization.py), its validation accuracy measured again."""
    autocast = torch.bfloat16 if str(trainer.precision).startswith("bf16") else None
    try:
        quantize(module.model, data, population.seeds("quantize"), quantizer, module.loss_fn, autocast)
    except BaseException as err:  # stopped (SIGTERM) or failed: say where it resumes from
        checkpoints.on_exception(trainer, module, err)
        raise
    if data.has("val"):
        module.accuracy["val"] = replica_accuracy(module.model, data.eval_batches("val")).cpu()


def callbacks(parts: Parts, plan: Plan, population: Population, model: PopulationModel, pruning: Pruning | None,
              parallel: tuple[int, int] | None) -> list:  # fmt: skip
    """The `callbacks` nodes finished with what the job knows, and the pruning callback for a method that prunes."""
    made = [parts.callbacks["progress"](parallel=parallel)]
    histograms = parts.callbacks["histograms"]
    if histograms.keywords["epochs"] and model.layers:  # a family without weight matrices has none to show
        made.append(histograms(run_dir=plan.run_dir, names=[r.name for r in population.replicas]))
    return made + ([PruningCallback(pruning)] if pruning else [])
