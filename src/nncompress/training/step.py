"""The population's training step as plain tensor code: eager, or captured once in a CUDA graph and replayed.

Hand-written because Lightning's automatic optimization costs milliseconds of Python, hooks and kernel launches
per step whatever the population's size (about 3 ms on an H100, ten times the arithmetic of a 70-replica step),
and no library captures a step whose learning rate, batch and masks change between replays. Here an epoch is one
Lightning step; each of its mini-batch steps reads only device tensors (the epoch's data order, the batch and step
counters, the update masks) and computes its own learning rate, so on a GPU it is recorded once and replayed
with no host work. Pruned weights stay zero by construction: their update is masked inside the step.
"""
import math
import warnings

import torch

from ..models.layers import replica_targets, stream_generators

LR_SCHEDULES = ("inv_sqrt", "cosine", "constant")


def lr_factor(schedule: str, step: torch.Tensor, steps_per_epoch: int, total_steps: int) -> torch.Tensor:
    """Multiplier of the base learning rate at optimizer step `step` (counted from 0), as a float64 tensor."""
    s = step.double()
    if schedule == "inv_sqrt":  # the authors' eta_j = 2 eta_0 / sqrt(j), j the epoch counted from 1
        return 2.0 / torch.sqrt(torch.div(s, steps_per_epoch, rounding_mode="floor") + 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + torch.cos(math.pi * s.clamp(max=total_steps) / total_steps))
    if schedule == "constant":
        return torch.ones_like(s)
    raise ValueError(schedule)


def replica_sgd_(params, grads, buffers, lrs, momentum: float, nesterov: bool) -> None:
    """torch.optim.SGD's update (dampening 0, weight decay already in the gradients) with a learning rate per entry:
    `lrs[i]` broadcasts against `params[i]` (one per replica); `buffers[i]`: its momentum buffer, zero where none yet
    (with dampening 0 a zero buffer's first update gives torch's fresh one, the gradient). Op for op torch's own
    arithmetic (its tensor-lr step is `param.addcmul_(grad, lr, value=-1)`), so where every replica has the same
    learning rate it gives torch's numbers."""
    for p, g, buf, lr in zip(params, grads, buffers, lrs):
        if momentum:
            buf.mul_(momentum).add_(g)
            g = g.add(buf, alpha=momentum) if nesterov else buf
        p.addcmul_(g, lr, value=-1)


def compacts(active: int, trained: int) -> bool:
    """Whether a step computing `trained` replicas, `active` of them still training, leaves out the others: once at
    most half are left (halving: at most twice the work needed, and few new populations and graph captures)."""
    return 0 < active <= trained // 2


class PopulationStep:
    """Trains `model` on rows of `x`, `y` (the stacked training data) with `optimizer`, a fused SGD whose
    learning rate is a one-element tensor this step rewrites.

    It owns the masks: pruning hands it each layer's kept weights (`set_masks`), new values for them where a criterion
    compensates (`set_weights`) or rewinds (`rewind`) and the replicas still training (`train_only`). The kept weights
    live in the layers' `mask` buffers (saved with the model, read by export); from them and the replicas training it
    derives one update mask per parameter, which only it writes. Per parameter the
    gradient gets weight decay, then the regularizer (for `regularized` ones), then that update mask, before the
    optimizer step; the optimizer's momentum is masked too, so a masked entry never moves.

    With `compact` (and a `compactable` model, the MLP), once at most half the replicas trained are `active`
    (`train_only`) the others are no longer computed: each epoch trains the active ones alone, as a population of
    their own copied from the model before the epoch and back into it after (model, masks and optimizer state stay
    the record between epochs, so pruning, evaluation and export see one population throughout).

    With `restarts` (a pruning method that restarts replicas' training, compression.saliency.Criterion.restarts),
    each replica follows the learning-rate schedule from its own position (the step counter less its `offset`, which
    `restart` sets) and the update is `replica_sgd_`, with the optimizer's momentum buffers; otherwise every replica
    is at the same position and the optimizer steps itself, as torch.optim does.
    """

    def __init__(self, model, loss_fn, optimizer: torch.optim.SGD, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int, steps_per_epoch: int, lr_schedule: str, epochs: int, regularizer=None, regularized=(),
                 weight_decay: float = 0.0, autocast_dtype: torch.dtype | None = None, cuda_graph: bool = True,
                 compact: bool = True, restarts: bool = False):  # fmt: skip
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.epochs, self.compact = epochs, compact and model.compactable
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        group = optimizer.param_groups[0]  # its lr on the weights' device: a captured step reads it there
        self.lr = group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32, device=x.device)
        self.base_lr = float(self.lr)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.regularizer, self.regularized = regularizer, {id(p) for p in regularized}
        self.weight_decay, self.autocast_dtype = weight_decay, autocast_dtype
        self.schedule, self.steps_per_epoch = lr_schedule, steps_per_epoch
        self.total_steps = max(1, steps_per_epoch * epochs)
        device = x.device
        self.step = torch.zeros((), dtype=torch.long, device=device)  # optimizer steps taken
        self.batch = torch.zeros(1, dtype=torch.long, device=device)  # next full batch of the epoch (graph)
        self.loss_sum = torch.zeros(model.replicas, device=device)
        self.update_masks: dict[int, torch.Tensor] = {}  # parameter index -> update mask (parameter's shape)
        self.active = torch.ones(model.replicas, dtype=torch.bool, device=device)  # the replicas training
        self.use_graph, self.graph, self.order = cuda_graph and device.type == "cuda", None, None
        self.part: tuple[torch.Tensor, PopulationStep] | None = None  # (replicas, their step) once compacted
        self.losses = torch.zeros(model.replicas, device=device)  # each replica's loss in the last epoch it trained
        self.replica_epochs = 0  # replicas computed, summed over epochs
        self.restarts = restarts
        self.offset = torch.zeros(model.replicas, dtype=torch.long, device=device)  # schedule position: step - offset
        if restarts:
            if group["dampening"] or group["weight_decay"]:  # replica_sgd_ has neither (weight decay: the step's own)
                raise ValueError("a learning rate per replica needs an SGD without dampening or weight decay")
            self.lr_layers = self.replica_layers()
            if group["momentum"]:
                for p in self.params:
                    self.optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p))

    def replica_layers(self) -> list:
        """The layer holding each parameter, whose layout places each replica's learning rate (`restarts`)."""
        owner = {id(t): layer for layer in self.model.layers for t in (layer.stored, layer.bias)}
        if any(id(p) not in owner for p in self.params):
            raise ValueError("a learning rate per replica needs a model whose parameters are all its layers'")
        return [owner[id(p)] for p in self.params]

    def param_index(self, param: torch.nn.Parameter) -> int:
        return next(i for i, p in enumerate(self.params) if p is param)

    @torch.no_grad()
    def set_update_mask(self, param: torch.nn.Parameter, mask: torch.Tensor) -> None:
        """Only entries where `mask` is true move from now on; the optimizer's state is cleared outside it."""
        i = self.param_index(param)
        if i in self.update_masks:
            self.update_masks[i].copy_(mask)
        else:
            self.update_masks[i] = mask.to(param.device, param.dtype).clone()
            self.graph = None  # the captured step has no multiply for this parameter yet
        for state in self.optimizer.state.get(param, {}).values():
            if torch.is_tensor(state) and state.shape == param.shape:
                state.mul_(self.update_masks[i])

    def masks(self) -> list[torch.Tensor]:
        """Each layer's kept weights per replica (R, in, out), a copy the caller may change; all True while dense (a
        HashedNet's: its kept buckets, as its layers' `replica_units` lay them out)."""
        return [layer.replica_mask().clone() for layer in self.model.layers]

    @torch.no_grad()
    def set_masks(self, masks: list[torch.Tensor]) -> None:
        """Keep only the weights `masks` (R, in, out per layer) keep: the others are zeroed and never move (update and
        momentum masked), until a later call keeps them again, from zero."""
        for layer, mask in zip(self.model.layers, masks):
            layer.set_replica_mask_(mask)
        self.train_only(self.active)

    @torch.no_grad()
    def set_weights(self, index: torch.Tensor, weights: list[torch.Tensor]) -> None:
        """Replicas `index`' weights, (len(index), in, out) per layer, from now on, kept at zero wherever their masks
        prune; in place, so a captured step reads them."""
        for layer, w in zip(self.model.layers, weights):
            where = index.to(w.device)
            layer.put_units_(layer.stored, where, w.to(layer.stored.dtype) * layer.replica_mask()[where])

    @torch.no_grad()
    def train_only(self, active: torch.Tensor) -> None:
        """From now on only the kept weights (each layer's `mask`) and the biases of replicas `active` (bool, R)
        move: a pruned weight or a frozen replica never moves again, momentum included."""
        self.mask_updates(active)
        index = self.active.nonzero().flatten()
        trained = self.model.replicas if self.part is None else len(self.part[0])
        if self.compact and compacts(len(index), trained):
            self.part = index, self.alone(index)

    @torch.no_grad()
    def mask_updates(self, active: torch.Tensor) -> None:
        """Each parameter's update mask from the layers' kept weights and the replicas `active` (bool, R)."""
        self.active = active = active.to(self.x.device)
        for layer in self.model.layers:
            mask = layer.replicated(active)
            self.set_update_mask(layer.stored, mask if layer.mask is None else mask & layer.mask)
            self.set_update_mask(layer.bias, layer.from_replicas(active.view(-1, 1, 1), rows=1))

    def replica_lr(self) -> torch.Tensor:
        """Each replica's learning rate (R,) at its next step: the schedule at its own position (`restart`)."""
        factor = lr_factor(self.schedule, self.step - self.offset, self.steps_per_epoch, self.total_steps)
        return (self.base_lr * factor).float()

    @torch.no_grad()
    def replica_parameters(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Copies of replicas `index`' parameters: per layer its weights (len(index), in, out), then its biases
        (len(index), out)."""
        index = index.to(self.x.device)
        return [t[index].clone() for layer in self.model.layers for t in (layer.replica_units(), layer.replica_bias())]

    @torch.no_grad()
    def rewind(self, index: torch.Tensor, parameters: list[torch.Tensor]) -> None:
        """Replicas `index`' parameters set to `parameters` (as `replica_parameters` gives them), the weights their
        masks remove left at zero."""
        index = index.to(self.x.device)
        self.set_weights(index, [weight.to(index.device) for weight in parameters[0::2]])
        for layer, bias in zip(self.model.layers, parameters[1::2], strict=True):
            layer.put_(layer.bias, index, bias.to(index.device).unsqueeze(1))

    @torch.no_grad()
    def restart(self, index: torch.Tensor, epoch: int) -> None:
        """Replicas `index` train on as from the start of epoch `epoch`: their learning rate follows the schedule from
        there, their momentum starts from zero (a new optimizer's)."""
        if not self.restarts:
            raise RuntimeError("this step keeps one learning-rate schedule for the population: a criterion that "
                               "restarts replicas says so (Criterion.restarts)")  # fmt: skip
        index = index.to(self.x.device)
        self.offset[index] = self.step - epoch * self.steps_per_epoch
        for layer, p in zip(self.lr_layers, self.params):
            if "momentum_buffer" in self.optimizer.state[p]:
                put = layer.put_units_ if p is layer.stored else layer.put_
                put(self.optimizer.state[p]["momentum_buffer"], index, 0.0)

    def state_dict(self) -> dict:
        """What the step keeps between epochs besides the model and its optimizer (a checkpoint's part): the step
        counter and base learning rate (the optimizer's own lr is the last step's), which replicas train and whether
        updates are masked at all, which replicas it trains apart, their last losses, and with `restarts` each
        replica's schedule offset; on the CPU."""
        restarted = {"offset": self.offset.cpu()} if self.restarts else {}
        return {"step": self.step.cpu(), "base_lr": self.base_lr, "masked": bool(self.update_masks),
                "active": self.active.cpu(), "part": None if self.part is None else self.part[0].cpu(),
                "losses": self.losses.cpu(), "replica_epochs": self.replica_epochs, **restarted}  # fmt: skip

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Back to where `state_dict` was taken, the model (masks included) and optimizer already restored."""
        self.step.copy_(state["step"])
        self.base_lr, self.replica_epochs = state["base_lr"], state["replica_epochs"]
        self.losses.copy_(state["losses"])
        if self.restarts:
            self.offset.copy_(state["offset"])
        if state["masked"]:
            self.mask_updates(state["active"])
        if state["part"] is not None and self.compact:
            index = state["part"].to(self.x.device)
            self.part = index, self.alone(index)

    def alone(self, index: torch.Tensor) -> "PopulationStep":
        """A step training replicas `index` of the model as a population of their own (model.subset)."""
        sub = self.model.subset(index)
        optimizer = type(self.optimizer)(sub.parameters(), **{**self.optimizer.defaults, "lr": self.base_lr})
        regularized = [mine.stored for mine, theirs in zip(sub.layers, self.model.layers) if id(theirs.stored) in self.regularized]
        return PopulationStep(sub, self.loss_fn, optimizer, self.x, self.y, self.batch_size, self.steps_per_epoch,
                              self.schedule, self.epochs, self.regularizer, regularized, self.weight_decay,
                              self.autocast_dtype, self.use_graph, compact=False, restarts=self.restarts)  # fmt: skip

    def pairs(self, other: "PopulationStep"):
        """(layer, parameter of this model, parameter of `other`'s model, which holds replicas of this one)."""
        for mine, theirs in zip(self.model.layers, other.model.layers):
            yield from ((mine, mine.stored, theirs.stored), (mine, mine.bias, theirs.bias))

    @torch.no_grad()
    def exchange(self, index: torch.Tensor, part: "PopulationStep", pull: bool) -> None:
        """Copy replicas `index`' weights, optimizer state and step counter into `part` (pull) or back from it;
        with `pull` their update masks and schedule offsets too (only this step changes them)."""
        (part.step.copy_ if pull else self.step.copy_)(self.step if pull else part.step)
        if pull:
            part.offset.copy_(self.offset[index])
        for layer, mine, theirs in self.pairs(part):
            i = self.param_index(mine)
            if pull and i in self.update_masks:
                part.set_update_mask(theirs, layer.per_replica(self.update_masks[i])[index])
            tensors = [(mine, theirs)]
            for key, value in self.optimizer.state.get(mine, {}).items():
                if torch.is_tensor(value) and value.shape == mine.shape:  # momentum
                    tensors.append((value, part.optimizer.state[theirs].setdefault(key, torch.empty_like(theirs))))
            for full, own in tensors:
                own.copy_(layer.per_replica(full)[index]) if pull else layer.put_(full, index, own)

    def run_epoch(self, order: torch.Tensor) -> torch.Tensor:
        """One epoch over `order` (G, n), each stream's rows of x in its order; returns each replica's mean
        training loss (R,), for a replica no longer trained (`train_only`) the one of the last epoch it trained."""
        self.replica_epochs += self.model.replicas if self.part is None else len(self.part[0])
        if self.part is None:
            self.losses = self.epoch(order)
        else:
            index, part = self.part
            self.exchange(index, part, pull=True)
            self.losses[index] = part.run_epoch(order.index_select(0, self.model.input_streams(index)))
            self.exchange(index, part, pull=False)
        return self.losses.clone()

    def epoch(self, order: torch.Tensor) -> torch.Tensor:
        """Train every replica an epoch. Full batches replay the captured step on a GPU; the last partial batch
        runs eager."""
        n, B = order.shape[1], self.batch_size
        full, rest = divmod(n, B)
        self.loss_sum.zero_()
        if self.use_graph and full:
            if self.order is None or self.order.shape != order.shape:
                self.order, self.graph = torch.empty_like(order), None
            self.order.copy_(order)
            self.batch.zero_()
            if self.graph is None:
                self.capture(full)
        if self.graph is not None and full:
            for _ in range(full):
                self.graph.replay()
        else:
            for i in range(full):
                self.train(order[:, i * B : (i + 1) * B])
        if rest:
            self.train(order[:, full * B :])
        return self.loss_sum / (full + (rest > 0))

    def full_batch_step(self) -> None:
        """The step on full batch number `self.batch` of `self.order`, picked on the device."""
        G, B = self.order.shape[0], self.batch_size
        rows = self.order[:, : self.full * B].view(G, self.full, B).index_select(1, self.batch).view(G, B)
        self.train(rows)
        self.batch.add_(1)

    def capture(self, full: int) -> None:
        """Record `full_batch_step` in a CUDA graph, after warm-up steps on a side stream (PyTorch's recipe for
        whole-network capture) whose effects on the weights, optimizer state, counters and dropout generators are
        then undone."""
        self.full = full
        # Warm-up momentum is zeroed below: with dampening, a zero buffer's first update is not a fresh one's (g)
        assert all(group["dampening"] == 0 for group in self.optimizer.param_groups), "capture needs dampening 0"
        had_state = set(self.optimizer.state)
        momentum = [v for st in self.optimizer.state.values() for v in st.values() if torch.is_tensor(v)]
        state = [*self.params, *momentum, self.step, self.batch, self.loss_sum]
        generators = stream_generators(self.model, self.x.device)
        saved, rng = [t.detach().clone() for t in state], [g.get_state() for g in generators]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(min(3, full)):
                self.full_batch_step()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for t, s in zip(state, saved):
                t.copy_(s)
            for p, st in self.optimizer.state.items():
                if p not in had_state:  # momentum created by the warm-up: zero is the same as none (buf = g)
                    for v in st.values():
                        if torch.is_tensor(v):
                            v.zero_()
        for g, s in zip(generators, rng):
            g.set_state(s)
        self.graph = torch.cuda.CUDAGraph()
        for g in generators:  # a generator the graph draws from must be registered, so each replay advances it
            self.graph.register_generator_state(g)
        try:
            with torch.cuda.graph(self.graph):
                self.full_batch_step()
        except RuntimeError as err:  # an op that cannot be recorded (one that waits for the host, say)
            warnings.warn(f"training eagerly: the step could not be captured in a CUDA graph ({str(err).splitlines()[0]})")
            self.use_graph, self.graph = False, None

    def train(self, rows: torch.Tensor) -> None:
        """One SGD step of every replica on its batch: stream g reads rows[g] (G, b) of x."""
        (G, b), flat = rows.shape, rows.reshape(-1)
        x, y = self.x.index_select(0, flat).view(G, b, -1), self.y.index_select(0, flat).view(G, b)
        dtype = self.autocast_dtype or torch.bfloat16
        with torch.autocast(x.device.type, dtype, enabled=self.autocast_dtype is not None, cache_enabled=False):
            logits = self.model(x)
        losses = self.loss_fn(logits, replica_targets(y, logits.shape[0]))
        grads = torch.autograd.grad(losses.sum(), self.params)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(self.params, grads)):
                if self.weight_decay:
                    g.add_(p, alpha=self.weight_decay)
                if id(p) in self.regularized:
                    self.regularizer.add_to(g, p)
                if i in self.update_masks:
                    g.mul_(self.update_masks[i])
                p.grad = g
            if self.restarts:
                lr = self.replica_lr()
                group = self.optimizer.param_groups[0]
                lrs = [layer.replicated(lr, rows=1) if p is layer.stored else layer.from_replicas(lr.view(-1, 1, 1), rows=1)
                       for layer, p in zip(self.lr_layers, self.params)]  # fmt: skip
                replica_sgd_(self.params, grads, [self.optimizer.state[p].get("momentum_buffer") for p in self.params],
                             lrs, group["momentum"], group["nesterov"])  # fmt: skip
            else:
                factor = lr_factor(self.schedule, self.step, self.steps_per_epoch, self.total_steps)
                self.lr.copy_(self.base_lr * factor)
                self.optimizer.step()
            self.step.add_(1)
            self.loss_sum.add_(losses.detach())
