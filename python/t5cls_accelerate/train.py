"""
The training job `t5cls train --launcher accelerate` writes: t5cls's recipe run on PyTorch + transformers +
accelerate, one process per device (`accelerate launch --config_file accelerate_config.yaml train.py job.json`).

What it computes is t5cls's:
- the data, tokenization, prefix, truncation, label targets and padding of recipe.py;
- the epoch order from t5cls's generator and sampler, seeded with --seed, so a one-process job trains on t5cls's
  batches in t5cls's order. Several processes share one global order: every optimizer step takes the same
  `--batch-size` examples (times --gradient-accumulation-steps) as a one-process run, and rank r of N takes the
  examples r, r+N, r+2N, … of each batch. Each rank's summed token loss is scaled by N / (the batch's label tokens
  over all ranks), so the averaged gradient is exactly the gradient of the whole batch's mean token loss, whatever
  the number of processes. A rank whose share of a short last batch is empty runs its first example with weight 0;
- AdamW (torch.optim.AdamW, betas 0.9/0.999, eps 1e-8) or transformers' Adafactor with t5cls's settings, the linear
  warm-up then constant rate; the gradient norm of every step (no clipping) and a stop on a non-finite loss or norm;
- at each epoch's end, validation with greedy decoding (or rank decoding) and t5cls's metrics, the run log, the
  TensorBoard scalars, a checkpoint whenever dev macro-F1 improves and early stopping. The dev set's batches are
  a one-process run's (length-sorted); rank r of N decodes the batches r, r+N, … and the predictions are gathered
  (gather_for_metrics), so every example is decoded in the same batch as on one process and the metrics are its;
- a LoRA job (lora.py) trains t5cls's adapter through PEFT on the frozen base and saves adapter checkpoints.

It writes the log, TensorBoard events and checkpoints in t5cls's formats (outputs.py) from the main process only.
The accelerate state (model or adapter, optimizer, random generators: the dropout masks go on as they would
have) and where the run stands (the epoch, the sampler's generator, the best checkpoint) are saved at each epoch's
end in <runs-dir>/<run>/accelerate_state; `--resume` continues from the last epoch saved there, to job.json's
--epochs (t5cls rewrites it when `--resume --epochs N` asks for more).

`train.py job.json --check OUT.json` runs nothing distributed (check.py): what t5cls's own numbers are compared with.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from job import Job, JobError, fail  # noqa: E402
from model import adafactor_last_lr, batch_tensors, load_data, load_model, make_optimizer, resolve_precision, token_loss  # noqa: E402
from recipe import T5Ids, chunk, classification_metrics, epoch_order, Rng, scheduled_lr  # noqa: E402
from outputs import RunLog, SummaryWriter, iso_now, save_adapter_checkpoint, save_checkpoint, write_json, EPOCH_FIELDS  # noqa: E402


class Progress:
    """Where the run stands (t5cls's TrainProgress, less the order inside an epoch): saved with the state."""

    def __init__(self, base_lr):
        self.epoch = 1
        self.steps = 0
        self.current_lr = base_lr or 0
        self.best_macro_f1 = -1
        self.epochs_without_gain = 0
        self.best_checkpoint = None
        self.stopped_early = False
        self.rng = None

    def start_epoch(self):
        self.loss_sum = 0.0
        self.loss_count = 0
        self.correct = 0
        self.seen = 0


def train(job, resume):
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedType
    from evaluate import predict_generate, predict_rank

    o = job.options
    cuda = torch.cuda.is_available()
    precision = resolve_precision(job.launcher.get("mixedPrecision", "auto"), cuda, torch)
    accelerator = Accelerator(cpu=not cuda, mixed_precision=precision)
    main = accelerator.is_main_process
    world, rank = accelerator.num_processes, accelerator.process_index
    say = (lambda line: print(line, flush=True)) if main and not o.get("quiet") else (lambda line: None)
    kind = accelerator.distributed_type
    deepspeed = kind == DistributedType.DEEPSPEED
    fsdp = kind == DistributedType.FSDP
    if job.lora:
        from lora import refuse_sharding

        refuse_sharding(accelerator.state.deepspeed_plugin.zero_stage if deepspeed else None, fsdp)
    devices = f"{world} x {'cuda' if cuda else 'cpu'}"
    if not cuda:
        say(f"no GPU visible: the job runs on {world} CPU process{'es' if world > 1 else ''}" + (" (gloo)" if world > 1 else ""))
    torch.manual_seed(o["seed"])

    tok = T5Ids(job.path(job.tokenizer))
    if not tok.exact and not job.data["data"].get("tokens"):
        say("note: the sentencepiece package is missing: transformers' tokenizer gives other ids than t5cls on a few texts")
    data = load_data(job, tok)
    model = load_model(job)
    pad_id = model.config.pad_token_id
    optimizer, base_lr = make_optimizer(model, o)
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    if job.lora:
        from lora import keep_adapter_only

        keep_adapter_only(accelerator, lambda: accelerator.unwrap_model(model), main)

    out = job.outputs
    log = RunLog(job.path(out["logFile"])) if main else None
    state_dir = os.path.join(job.path(out["tensorboardDir"]), "accelerate_state")
    p = Progress(base_lr)
    rng = Rng(o["seed"])
    if resume:
        progress_file = os.path.join(state_dir, "progress.json")
        if not os.path.exists(progress_file):
            raise JobError(f"--resume: {progress_file}: no saved state of this run (one is written at each epoch's end)")
        with open(progress_file, encoding="utf-8") as f:
            saved = json.load(f)
        for k, v in saved["progress"].items():
            setattr(p, k, v)
        if finished_run(p, o):
            raise JobError(
                f"--resume: the run {job.run_name} has finished ({p.epoch - 1} epochs, {p.steps} steps"
                + (", stopped early" if p.stopped_early else "")
                + "); nothing to resume"
                + ("" if p.stopped_early else " (pass a larger --epochs to train it further)")
            )
        accelerator.load_state(state_dir)
        if job.lora and not deepspeed:
            from lora import load_adapter_into

            load_adapter_into(accelerator.unwrap_model(model), state_dir)
        rng.set_state(saved["rng"])
        if main:
            log.line(f"resumed from {state_dir}: epoch {p.epoch}, step {p.steps}")
    elif main:
        header = {
            "processes": world,
            "devices": devices + (" (gloo)" if not cuda and world > 1 else ""),
            "precision": "bf16" if precision == "bf16" else "float32",
            "distributedType": str(kind).split(".")[-1],
            "torch": torch.__version__,
        }
        log.options(job.data["logOptions"], header)
    tb = SummaryWriter(job.path(out["tensorboardDir"]), purge_step=p.steps + 1 if resume else None) if main else None
    say(f"training {job.model_name} on {len(data['train_inputs'])} examples ({len(job.class_names)} classes), validating on "
        f"{len(data['dev_inputs'])}; {devices}, {world} process{'es' if world > 1 else ''}, precision {precision}")

    accum = o["gradientAccumulationSteps"]
    max_steps = o.get("maxSteps")

    def finished():
        return finished_run(p, o)

    def grad_norm():
        if deepspeed:
            norm = model.get_global_grad_norm() if hasattr(model, "get_global_grad_norm") else None
            return float(norm) if norm is not None else float("nan")
        if fsdp:
            return float(accelerator.clip_grad_norm_(model.parameters(), float("inf")))
        grads = [q.grad.float() for q in model.parameters() if q.grad is not None]
        return float(torch.sqrt(sum((g * g).sum() for g in grads))) if grads else 0.0

    def non_finite(what, value):
        where = f"; the last good checkpoint is {p.best_checkpoint}" if p.best_checkpoint else "; no checkpoint was saved yet"
        raise JobError(f"training stopped: the {what} is {value} at epoch {p.epoch}, step {p.steps + 1}{where}")

    while not finished():
        order = epoch_order(data["train_labels"], rng, o["useWeightedRandomSampler"])
        steps = chunk(chunk(order, o["batchSize"]), accum)
        if max_steps is not None:
            steps = steps[: max_steps - p.steps]
        p.start_epoch()
        model.train()
        for step_batches in steps:
            if base_lr is not None:
                lr = scheduled_lr(base_lr, p.steps, o["lrWarmupSteps"])
                for group in optimizer.param_groups:
                    group["lr"] = lr
            losses = []
            for k, batch in enumerate(step_batches):
                share = batch[rank::world]
                weight = 1.0 if share else 0.0
                ids, mask, labels = batch_tensors(data, share or batch[:1], pad_id, device)
                last = k == len(step_batches) - 1
                sync = last or deepspeed or world == 1
                context = accelerator.no_sync(model) if not sync else _nullcontext()
                if deepspeed:
                    deepspeed_boundary(accelerator, model, last)
                with context:
                    with accelerator.autocast():
                        loss_sum, tokens, exact = token_loss(model, ids, mask, labels)
                    loss_sum, tokens, exact = loss_sum * weight, tokens * int(weight), exact * int(weight)
                    totals = accelerator.reduce(torch.stack([loss_sum.detach(), tokens.float(), exact.float()]), reduction="sum")
                    global_tokens = max(float(totals[1]), 1.0)
                    scale = world / global_tokens / (1 if deepspeed else accum)
                    accelerator.backward(loss_sum * scale)
                batch_loss = float(totals[0]) / global_tokens
                if not math.isfinite(batch_loss):
                    non_finite("loss", batch_loss)
                losses.append(batch_loss)
                p.loss_sum += batch_loss * len(batch)
                p.loss_count += len(batch)
                p.correct += int(totals[2])
                p.seen += len(batch)
            norm = grad_norm()
            if not deepspeed and not math.isfinite(norm):
                non_finite("gradient norm", norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            p.steps += 1
            p.current_lr = scheduled_lr(base_lr, p.steps - 1, o["lrWarmupSteps"]) if base_lr is not None else (adafactor_last_lr(optimizer) or p.current_lr)
            if main:
                tb.add_scalar("train/loss_step", losses[-1], p.steps)
                if math.isfinite(norm):
                    tb.add_scalar("train/grad_norm", norm, p.steps)
        say(f"epoch {p.epoch}/{o['epochs']}: {len(steps)} steps, train_loss {p.loss_sum / max(1, p.loss_count):.4f}")

        # Validation: each rank decodes its share of the dev batches (a sharded model's ranks run as many rounds).
        model.eval()
        unwrapped = accelerator.unwrap_model(model)
        synced = (deepspeed and accelerator.state.deepspeed_plugin.zero_stage == 3) or fsdp
        part = (rank, world, synced)
        with _full_params(model, fsdp):
            args = (data["dev_inputs"], job.class_names, data["class_tokens"], o["evalBatchSize"])
            if job.data.get("validationDecode") == "rank":
                preds = predict_rank(unwrapped, *args, pad_id, device, part=part)
            else:
                preds = predict_generate(unwrapped, tok, *args, pad_id, unwrapped.config.eos_token_id, device, synced=synced, part=part)
        dev_labels = gathered_labels(accelerator, preds["labels"], world)
        m = classification_metrics(data["dev_labels"], dev_labels, len(job.class_names))
        r = {
            "epoch": p.epoch,
            "learning_rate": p.current_lr,
            "train_loss": p.loss_sum / max(1, p.loss_count),
            "train_accuracy": p.correct / max(1, p.seen),
            "dev_accuracy": m["accuracy"],
            "dev_macro_f1": m["macro_f1"],
            "dev_micro_f1": m["micro_f1"],
            "dev_weighted_f1": m["weighted_f1"],
            "dev_invalid": m["invalid"],
        }
        if main:
            log.epoch(p.epoch, r)
            for key in EPOCH_FIELDS:
                tb.add_scalar(key, r[key], p.epoch)
            tb.flush()
        say(f"epoch {p.epoch}: train_loss {r['train_loss']:.4f} train_acc {r['train_accuracy']:.4f} dev_acc {r['dev_accuracy']:.4f} "
            f"dev_macro_f1 {r['dev_macro_f1']:.4f} (invalid outputs: {r['dev_invalid']})")
        keep_best(job, p, r, accelerator, model, log, say)
        p.epoch += 1
        save_state(accelerator, state_dir, p, rng, main)
        accelerator.wait_for_everyone()

    if main:
        tb.close()
        if p.best_checkpoint:
            say(f"best dev macro-F1 {p.best_macro_f1:.4f}: {p.best_checkpoint}")
            print(f"checkpoint: {p.best_checkpoint}", flush=True)
        else:
            say("no checkpoint was saved")
    accelerator.end_training()


def keep_best(job, p, r, accelerator, model, log, say):
    """A checkpoint when dev macro-F1 improved, else one epoch more toward early stopping (t5cls's keepBest)."""
    o = job.options
    if not r["dev_macro_f1"] > p.best_macro_f1:
        p.epochs_without_gain += 1
        patience = o.get("earlyStoppingPatience")
        if patience is not None and p.epochs_without_gain >= patience:
            p.stopped_early = True
            if log:
                log.line(f"early stopping: no better dev macro-F1 for {p.epochs_without_gain} epochs")
            say(f"early stopping after epoch {r['epoch']}: no better dev macro-F1 for {p.epochs_without_gain} epochs")
        return
    folder = os.path.join(job.path(job.outputs["weightsDir"]), f"{job.model_name}-{job.run_time}-epoch{r['epoch']}")
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        tensors = {}
        if job.lora:
            from lora import adapter_tensors

            tensors = adapter_tensors(state)
        for name, value in state.items() if not job.lora else ():
            if name.endswith("embed_tokens.weight") or (name == "lm_head.weight" and not job.checkpoint["headWeightWritten"]):
                continue
            tensors[name] = value.detach().float().cpu().contiguous().clone()
        meta = {
            "format": "t5cls-checkpoint",
            "version": 1,
            "baseModel": job.model_name,
            "runName": job.run_name,
            "epoch": r["epoch"],
            "step": p.steps,
            "prefixText": o["prefixText"],
            "maxSourceLength": o["maxSourceLength"],
            "classesMap": {name: i for i, name in enumerate(job.class_names)},
            "options": job.record,
            "metrics": r,
            "createdAt": iso_now(),
        }
        (save_adapter_checkpoint if job.lora else save_checkpoint)(folder, tensors, job, meta)
        log.line(f"saved checkpoint {folder}")
        say(f"saved checkpoint {folder}")
    p.best_macro_f1 = r["dev_macro_f1"]
    p.epochs_without_gain = 0
    p.best_checkpoint = folder


def save_state(accelerator, state_dir, p, rng, main):
    """accelerate's state (model, optimizer, generators) and where the run stands, after an epoch."""
    accelerator.save_state(state_dir)
    if main:
        keys = ["epoch", "steps", "current_lr", "best_macro_f1", "epochs_without_gain", "best_checkpoint", "stopped_early"]
        write_json(os.path.join(state_dir, "progress.json"), {"savedAt": iso_now(), "progress": {k: getattr(p, k) for k in keys}, "rng": rng.get_state()})


def deepspeed_boundary(accelerator, engine, last):
    """
    Under DeepSpeed, whether this micro-batch's backward ends the optimizer step: DeepSpeed sums the gradients of
    the step's micro-batches and steps after the last one, also when an epoch's last step has fewer than
    --gradient-accumulation-steps. accelerate hands its sync_gradients flag to DeepSpeed as that boundary (left
    True, DeepSpeed would step after every micro-batch) or leaves the engine to count (older versions): both are set.
    """
    accelerator.sync_gradients = last
    engine.set_gradient_accumulation_boundary(last)


def finished_run(p, o):
    max_steps = o.get("maxSteps")
    return p.stopped_early or p.epoch > o["epochs"] or (max_steps is not None and p.steps >= max_steps)


def gathered_labels(accelerator, labels, world):
    """Every dev example's predicted label: each rank's own, gathered (gather_for_metrics) on several processes."""
    if world == 1:
        return labels
    mine = [(i, label) for i, label in enumerate(labels) if label is not None]
    out = [None] * len(labels)
    for i, label in accelerator.gather_for_metrics(mine, use_gather_object=True):
        out[i] = label
    missing = [i for i, label in enumerate(out) if label is None]
    if missing:
        raise JobError(f"validation: no rank predicted dev example {missing[0]}")
    return out


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _full_params(model, fsdp):
    if not fsdp:
        return _nullcontext()
    from torch.distributed.fsdp import FullyShardedDataParallel

    return FullyShardedDataParallel.summon_full_params(model, writeback=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description="t5cls's training job on PyTorch + transformers + accelerate")
    parser.add_argument("job", help="the job's job.json")
    parser.add_argument("--resume", action="store_true", help="continue from the state saved at the last epoch's end")
    parser.add_argument("--check", metavar="OUT.json", help="write the same-recipe check values and exit (one process)")
    args = parser.parse_args(argv)
    started = time.time()
    try:
        job = Job(args.job)
        if args.check:
            from check import check

            check(job, args.check)
        else:
            train(job, args.resume)
    except JobError as e:
        fail(str(e))
    if not args.check and job.options.get("quiet") is not True and os.environ.get("RANK", "0") == "0":
        print(f"done in {time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
