"""PyTorch reference for `npm run bench`'s training modes: the same job in transformers (+ PEFT for LoRA).

    /path/to/python scripts/reference/torch_bench.py [--model-config tiny|mini|small|base|large|xl|config.json]
        [--batch-size 16] [--modes adamw,adafactor] [--steps 5] [--threads 2]
        [--lora-r R [--lora-alpha A] [--lora-dropout P] [--lora-target-modules q,v|all-linear|name,...]]

A T5ForConditionalGeneration of the named shape (the table of t5cls's NAMED_CONFIGS) or of a config.json, with
random weights (HF's initialisation), in training mode (dropout as the config says). Each step trains on a batch
as scripts/bench.ts builds it: batch × 63 random tokens + EOS, attention mask all ones, labels 4 tokens (3 random +
EOS, one of 4 fixed label sequences per example). AdamW is torch.optim.AdamW(lr=1e-4) (t5cls's AdamW defaults are
torch's: betas 0.9/0.999, eps 1e-8, weight decay 0.01); Adafactor is transformers' with the settings t5cls uses
(lr 1e-3, scale_parameter, relative_step and warmup_init off). With --lora-r the model is wrapped by PEFT's
get_peft_model (LoraConfig r, lora_alpha, lora_dropout, target_modules; q,v by default as PEFT's for T5): only the
adapter is trained and the optimizer holds only its tensors.

The first 2 steps of each mode are warm-up. Prints one JSON line: train_<mode>_ex_s as bench.ts computes it
(batch × timed steps / their total time), train_<mode>_median_ex_s (batch / the median step time), peak_rss_mb
(ru_maxrss of the process: with a single mode, that mode's alone), params (the model's), and with LoRA trainable
(PEFT's "trainable params") and lora {r, alpha, targets}.
"""

import argparse
import json
import os
import resource
import statistics
import time

import torch
import transformers
from transformers import T5Config, T5ForConditionalGeneration
from transformers.optimization import Adafactor

# t5cls's NAMED_CONFIGS (src/model/config.ts): tiny to large are T5 v1.0 (relu, tied head), xl is flan-t5-xl's.
NAMED_CONFIGS = {
    "tiny": dict(d_model=64, d_kv=16, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4),
    "mini": dict(d_model=128, d_kv=32, d_ff=512, num_layers=4, num_decoder_layers=4, num_heads=4),
    "small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8),
    "base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12),
    "large": dict(d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_decoder_layers=24, num_heads=16),
    "xl": dict(
        d_model=2048,
        d_kv=64,
        d_ff=5120,
        num_layers=24,
        num_decoder_layers=24,
        num_heads=32,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
}
# HF's defaults for what the table leaves out, as t5cls's T5Config has them.
DEFAULTS = dict(
    vocab_size=32128,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.1,
    layer_norm_epsilon=1e-6,
    initializer_factor=1.0,
    feed_forward_proj="relu",
    tie_word_embeddings=True,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
)

SOURCE_LENGTH = 64
LABEL_SEQUENCES = 4
WARMUP = 2


def model_fields(name):
    """The config's fields: a named shape's or a config.json's, with HF's defaults for what it leaves out."""
    if name in NAMED_CONFIGS:
        return {**DEFAULTS, **NAMED_CONFIGS[name]}
    if not os.path.exists(name):
        raise SystemExit(f'--model-config: "{name}" is neither a named shape ({"|".join(NAMED_CONFIGS)}) nor a config.json file')
    with open(name) as f:
        return {**DEFAULTS, **json.load(f)}


def build_model(fields):
    """A T5 of these fields, its LM head untied where they say so (transformers 5.x ties it in every new model)."""
    model = T5ForConditionalGeneration(T5Config(**fields))
    if fields.get("tie_word_embeddings", True) is False and model.lm_head.weight is model.shared.weight:
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight))
    return model


def lora_config(args):
    if args.lora_r is None:
        stray = [f for f in ("lora_alpha", "lora_dropout", "lora_target_modules") if getattr(args, f) is not None]
        if stray:
            raise SystemExit(f"--{stray[0].replace('_', '-')} needs --lora-r")
        return None
    from peft import LoraConfig

    targets = args.lora_target_modules
    if targets is None:
        targets = ["q", "v"]
    elif targets != "all-linear":
        targets = [t.strip() for t in targets.split(",")]
    alpha = args.lora_alpha if args.lora_alpha is not None else 8
    return LoraConfig(r=args.lora_r, lora_alpha=alpha, lora_dropout=args.lora_dropout or 0.0, target_modules=targets)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-config", default="small")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--modes", default="adamw,adafactor")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lora-r", type=int)
    p.add_argument("--lora-alpha", type=float)
    p.add_argument("--lora-dropout", type=float)
    p.add_argument("--lora-target-modules")
    args = p.parse_args()
    modes = [m.strip() for m in args.modes.split(",")]
    for m in modes:
        if m not in ("adamw", "adafactor"):
            raise SystemExit(f'--modes: unknown mode "{m}" (expected adamw, adafactor)')

    torch.set_num_threads(args.threads)
    fields = model_fields(args.model_config)
    config = T5Config(**fields)
    lora = lora_config(args)
    batch = args.batch_size
    g = torch.Generator().manual_seed(1)
    vocab = min(config.vocab_size, 32000)

    def randint(shape):
        return torch.randint(3, vocab, shape, generator=g)

    label_sequences = torch.cat([randint((LABEL_SEQUENCES, 3)), torch.ones(LABEL_SEQUENCES, 1, dtype=torch.long)], dim=1)

    def train_batch():
        input_ids = torch.cat([randint((batch, SOURCE_LENGTH - 1)), torch.ones(batch, 1, dtype=torch.long)], dim=1)
        labels = label_sequences[torch.randint(0, LABEL_SEQUENCES, (batch,), generator=g)]
        return input_ids, torch.ones_like(input_ids), labels

    backend = f"torch {torch.__version__}, transformers {transformers.__version__}"
    if lora is not None:
        import peft
        from peft import get_peft_model

        backend += f", peft {peft.__version__}"
        targets = lora.target_modules
        result_lora = {"r": lora.r, "alpha": lora.lora_alpha, "targets": sorted(targets) if isinstance(targets, set) else targets}
    result = {"backend": f"{backend} (CPU)", "threads": torch.get_num_threads()}
    for mode in modes:
        torch.manual_seed(0)
        model = build_model(fields)
        result["params"] = sum(t.numel() for t in model.parameters())
        if lora is not None:
            model = get_peft_model(model, lora)
            result["lora"] = result_lora
        model.train()
        trained = [t for t in model.parameters() if t.requires_grad]
        result["trainable"] = sum(t.numel() for t in trained)
        if mode == "adamw":
            opt = torch.optim.AdamW(trained, lr=1e-4)
        else:
            opt = Adafactor(trained, lr=1e-3, scale_parameter=False, relative_step=False, warmup_init=False)
        times = []
        for step in range(args.steps + WARMUP):
            input_ids, attention_mask, labels = train_batch()
            t0 = time.perf_counter()
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss.item()
            dt = time.perf_counter() - t0
            if step >= WARMUP:
                times.append(dt)
        result[f"train_{mode}_ex_s"] = batch * len(times) / sum(times)
        result[f"train_{mode}_median_ex_s"] = batch / statistics.median(times)
        del opt, model, trained
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
