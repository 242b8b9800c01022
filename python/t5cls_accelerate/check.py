"""
`train.py job.json --check OUT.json`: the numbers t5cls's own are compared with, from one process with dropout off:
the token ids, the first training batch and its loss, the dev predictions before training (rank and greedy
decoding) and, for a LoRA job, the adapter after one optimizer step on that batch (OUT.json's `firstStepAdapter`,
a safetensors file with t5cls's tensor names).
"""
import os

from model import batch_tensors, load_data, load_model, make_optimizer, token_loss
from outputs import write_json
from recipe import T5Ids, Rng, chunk, epoch_order, scheduled_lr


def check(job, out_file):
    import torch
    from evaluate import predict_generate, predict_rank

    o = job.options
    torch.manual_seed(o["seed"])
    tok = T5Ids(job.path(job.tokenizer))
    data = load_data(job, tok)
    model = load_model(job).eval()
    rng = Rng(o["seed"])
    order = epoch_order(data["train_labels"], rng, o["useWeightedRandomSampler"])
    first = chunk(order, o["batchSize"])[0]
    pad_id = model.config.pad_token_id
    ids, mask, labels = batch_tensors(data, first, pad_id, "cpu")
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    args = (data["dev_inputs"], job.class_names, data["class_tokens"], o["evalBatchSize"])
    rank = predict_rank(model, *args, pad_id, "cpu")
    generate = predict_generate(model, tok, *args, pad_id, model.config.eos_token_id, "cpu")
    result = {
        "idsFrom": data["ids_from"],
        "trainInputs": data["train_inputs"],
        "devInputs": data["dev_inputs"],
        "classTokens": data["class_tokens"],
        "firstBatch": first,
        "firstBatchLoss": float(out.loss),
        "rank": rank,
        "generate": generate,
    }
    if job.lora:
        result["firstStepAdapter"] = first_step_adapter(job, model, (ids, mask, labels), out_file)
    write_json(out_file, result)


def first_step_adapter(job, model, batch, out_file):
    """One optimizer step on the batch (the job's optimizer and rate, dropout off); the adapter written after it."""
    from safetensors.torch import save_file
    from lora import adapter_parameters

    o = job.options
    optimizer, base_lr = make_optimizer(model, o)
    if base_lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = scheduled_lr(base_lr, 0, o["lrWarmupSteps"])
    loss_sum, tokens, _ = token_loss(model, *batch)
    (loss_sum / tokens).backward()
    optimizer.step()
    file = os.path.splitext(out_file)[0] + ".adapter.safetensors"
    tensors = {name: p.detach().float().cpu().contiguous().clone() for name, p in adapter_parameters(model).items()}
    save_file(tensors, file, metadata={"format": "pt"})
    return file
