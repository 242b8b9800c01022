"""
The job's model, data and optimizer as t5cls's recipe has them: the examples as t5cls's ids, the starting
checkpoint (float32, its head tied and scaled as t5cls reads it, a LoRA adapter attached through PEFT for a LoRA
job), t5cls's optimizers over the trained parameters, batches and the summed token loss.
"""
import os

from job import JobError
from recipe import encode_input


def load_data(job, tok):
    """The examples as ids: t5cls's own (data/tokens.json) where the job has them, else tokenized here."""
    o = job.options
    encode = lambda rows: [encode_input(tok, text, o["prefixText"], o["maxSourceLength"]) for text, _ in rows]
    train = job.read_split("train")
    validation = job.read_split("validation")
    tokens = job.read_tokens()
    if tokens is None:
        tokens = {"train": encode(train), "validation": encode(validation), "classes": [tok.encode(name) for name in job.class_names]}
    if len(tokens["train"]) != len(train) or len(tokens["validation"]) != len(validation):
        raise JobError(f"{job.path(job.data['data']['tokens'])}: the ids do not match the data (one row per example)")
    return {
        "train_inputs": tokens["train"],
        "train_labels": [label for _, label in train],
        "dev_inputs": tokens["validation"],
        "dev_labels": [label for _, label in validation],
        "class_tokens": tokens["classes"],
        "ids_from": "t5cls" if job.data["data"].get("tokens") else ("sentencepiece" if tok.exact else "transformers"),
    }


def load_model(job):
    """The starting checkpoint, float32, its head tied and scaled as t5cls reads it; a LoRA job's adapter attached."""
    import torch
    import transformers
    from transformers import T5ForConditionalGeneration

    m = job.model
    local = job.path(m["path"]) if m.get("path") else None
    source = local if local and os.path.isdir(local) else m.get("hubId")
    if not source:
        raise JobError(f'model folder {local} is not on this machine and the job names no Hub id (job.json field "model")')
    dtype_arg = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    kwargs = {dtype_arg: torch.float32}
    if source != local and m.get("revision"):
        kwargs["revision"] = m["revision"]
    model = T5ForConditionalGeneration.from_pretrained(source, **kwargs)
    want = job.checkpoint
    scaled = getattr(model.config, "scale_decoder_outputs", None) if dtype_arg == "dtype" else None
    if scaled is None:
        scaled = bool(model.config.tie_word_embeddings)
    if scaled != want["scaled"]:
        raise JobError(
            f"{source}: transformers {transformers.__version__} reads this model's decoder output as "
            f"{'scaled' if scaled else 'unscaled'} where t5cls reads it {'scaled' if want['scaled'] else 'unscaled'}; "
            "save the model with t5cls first (a t5cls checkpoint reads the same in transformers 4.x and 5.x)"
        )
    tied = model.lm_head.weight is model.shared.weight or model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr()
    if want["tied"] and not tied:
        if not torch.equal(model.lm_head.weight, model.shared.weight):
            raise JobError(f"{source}: t5cls reads the LM head as the shared embedding, but lm_head.weight differs from it here")
        model.lm_head.weight = model.shared.weight
    elif tied and not want["tied"]:
        model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    if job.lora:
        from lora import attach

        model = attach(job, model)
    return model


def make_optimizer(model, o):
    """t5cls's optimizers (src/train/step.ts): AdamW, fixed-rate Adafactor, or relative-step Adafactor."""
    import torch
    from transformers.optimization import Adafactor

    params = [p for p in model.parameters() if p.requires_grad]
    if o["useAdafactorSchedule"]:
        return Adafactor(params, lr=None, scale_parameter=True, relative_step=True, warmup_init=True, weight_decay=o["weightDecay"]), None
    lr = o["learningRate"]
    if o["useAdafactor"]:
        opt = Adafactor(
            params,
            lr=lr,
            scale_parameter=bool(o["adafactorScaleParameter"]),
            relative_step=False,
            warmup_init=False,
            weight_decay=o["weightDecay"],
        )
        return opt, lr
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=o["weightDecay"]), lr


def adafactor_last_lr(optimizer):
    """The rate relative-step Adafactor used last, for the first parameter (HF's AdafactorSchedule)."""
    inner = getattr(optimizer, "optimizer", optimizer)
    group = inner.param_groups[0]
    state = inner.state.get(group["params"][0])
    if not state or state.get("step", 0) == 0:
        return None
    return float(inner._get_lr(group, state))


def resolve_precision(requested, cuda, torch):
    if requested == "fp16":
        raise JobError("--mixed-precision fp16 is refused: T5 overflows in fp16 (transformers issues #4586, #14189); use bf16 or no")
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if requested == "bf16" and not bf16_ok:
        raise JobError("--mixed-precision bf16: no GPU here supports bf16 (use --mixed-precision no)")
    if requested in ("bf16", "no"):
        return requested
    return "bf16" if bf16_ok else "no"


def batch_tensors(data, indices, pad_id, device):
    from evaluate import model_batch

    return model_batch([data["train_inputs"][i] for i in indices], [data["class_tokens"][data["train_labels"][i]] for i in indices], pad_id, device)


def token_loss(model, ids, mask, labels):
    """Summed token loss (float32), label tokens and exact matches (every label token the argmax) of a batch."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask, labels=labels).logits.float()
    valid = labels != -100
    loss_sum = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100, reduction="sum")
    hit = (~valid) | (logits.argmax(-1) == labels)
    return loss_sum, valid.sum(), hit.all(-1).sum()
