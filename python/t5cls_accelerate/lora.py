"""
A LoRA job (`t5cls train --launcher accelerate --lora-r …` or `--adapter DIR`): t5cls's adapter trained through PEFT.

The job folder holds the adapter to start from (`adapter/`, written by t5cls: a fresh one drawn as t5cls's own run
draws it, or the --adapter folder's tensors), so both start from the same numbers. It is loaded with PEFT onto the
frozen base: only its lora_A / lora_B tensors train. Checkpoints are what t5cls's LoRA run writes: the same
adapter_config.json text (t5cls wrote it: task type, base, floats as floats, keys sorted), adapter_model.safetensors
with PEFT's saved names (`base_model.model.<module>.lora_A.weight`, no adapter name), the tokenizer and t5cls.json.
accelerate's saved state keeps the adapter alone (the frozen base is the base model's folder, unchanged).
"""
import os
import re
import shutil

from job import JobError

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
# PEFT's parameter names carry the adapter's name ("default"); its saved files do not.
_ADAPTER_NAME = re.compile(r"\.(lora_[AB])\.[^.]+\.weight$")


def initial_adapter_dir(job):
    return job.path(job.lora["adapter"])


def attach(job, model):
    """The base model with the job's starting adapter loaded through PEFT, trainable; the base frozen."""
    from peft import PeftConfig, PeftModel

    folder = initial_adapter_dir(job)
    if not os.path.exists(os.path.join(folder, ADAPTER_CONFIG_FILE)):
        raise JobError(f"{folder}: no {ADAPTER_CONFIG_FILE} (the job's starting adapter, written by t5cls)")
    config = PeftConfig.from_pretrained(folder)
    # peft 0.21 cannot build PeftModelForSeq2SeqLM on transformers 5.x; the plain PeftModel computes the same.
    config.task_type = None
    peft_model = PeftModel.from_pretrained(model, folder, config=config, is_trainable=True)
    trained = adapter_parameters(peft_model)
    expected = set(initial_tensors(job))
    if set(trained) != expected:
        missing = sorted(expected - set(trained))[:1] or sorted(set(trained) - expected)[:1]
        raise JobError(f"{folder}: PEFT's adapter does not have t5cls's tensors (first difference: {missing[0]})")
    frozen_trained = [n for n, p in peft_model.named_parameters() if p.requires_grad and not _ADAPTER_NAME.search(n)]
    if frozen_trained:
        raise JobError(f"PEFT left {frozen_trained[0]} trainable: only the adapter trains")
    return peft_model


def saved_name(name):
    """A PEFT parameter's name as its saved adapter names it (`….lora_A.default.weight` → `….lora_A.weight`)."""
    return _ADAPTER_NAME.sub(r".\1.weight", name)


def adapter_parameters(peft_model):
    """The adapter's trainable tensors by their saved names."""
    return {saved_name(n): p for n, p in peft_model.named_parameters() if p.requires_grad and _ADAPTER_NAME.search(n)}


def adapter_tensors(state_dict):
    """The adapter's tensors (float32, on the CPU) of a full state dict, by their saved names."""
    out = {}
    for name, value in state_dict.items():
        if _ADAPTER_NAME.search(name):
            out[saved_name(name)] = value.detach().float().cpu().contiguous().clone()
    return out


def initial_tensors(job):
    from safetensors.torch import load_file

    return load_file(os.path.join(initial_adapter_dir(job), ADAPTER_WEIGHTS_FILE))


def write_adapter(folder, tensors, job):
    """adapter_model.safetensors and the adapter_config.json t5cls wrote for the job, into `folder`."""
    from safetensors.torch import save_file

    expected = set(initial_tensors(job))
    if set(tensors) != expected:
        raise RuntimeError(f"the adapter to save has other tensors than t5cls's ({len(tensors)} for {len(expected)})")
    save_file(tensors, os.path.join(folder, ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
    shutil.copyfile(os.path.join(initial_adapter_dir(job), ADAPTER_CONFIG_FILE), os.path.join(folder, ADAPTER_CONFIG_FILE))


def load_adapter_into(peft_model, folder):
    """The adapter tensors saved in `folder` copied into the model's own (the optimizer keeps its references)."""
    import torch
    from safetensors.torch import load_file

    saved = load_file(os.path.join(folder, ADAPTER_WEIGHTS_FILE))
    params = adapter_parameters(peft_model)
    if set(saved) != set(params):
        raise JobError(f"{folder}: the saved adapter does not fit this job's ({len(saved)} tensors for {len(params)})")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name].to(param.device, param.dtype))


def keep_adapter_only(accelerator, unwrap, main):
    """
    accelerate's saved state holds the adapter, not the frozen base: its model weights are left out on saving (the
    adapter is written beside them) and on loading (the adapter is read back by `load_state`'s caller).
    DeepSpeed saves and loads its own engine checkpoint, adapter included.
    """

    def on_save(models, weights, output_dir):
        if weights:
            tensors = adapter_tensors(unwrap().state_dict())
            weights.clear()
            if main:
                from safetensors.torch import save_file

                save_file(tensors, os.path.join(output_dir, ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})

    def on_load(models, input_dir):
        if os.path.exists(os.path.join(input_dir, ADAPTER_WEIGHTS_FILE)):
            models.clear()

    accelerator.register_save_state_pre_hook(on_save)
    accelerator.register_load_state_pre_hook(on_load)


def refuse_sharding(deepspeed_stage, fsdp):
    if fsdp:
        raise JobError("a LoRA job cannot run under FSDP here (the frozen base and the adapter would share FSDP units); use DDP or DeepSpeed ZeRO-2")
    if deepspeed_stage == 3:
        raise JobError("a LoRA job cannot run under DeepSpeed ZeRO-3 here (it partitions the frozen base); use --deepspeed-stage 2")
