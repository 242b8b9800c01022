"""
Validation as t5cls does it (src/eval/decoding.ts): greedy generation mapped back to a class name (an output that
is no class counts as invalid), or rank classification (every class name's tokens, </s> included, scored by their
log-likelihood; the most likely wins, the first on a tie). Batches go in order of input length, as in t5cls.

`part` = (rank, processes, synced) decodes the batches rank, rank + processes, … only (the others' labels are None):
each example in the batch it has on one process, so its numbers are the same. With `synced` (a sharded model, whose
every forward needs all ranks) a rank without a batch in a round decodes the first one again, its output unused.
"""
import torch

from recipe import IGNORE_INDEX, length_sorted_batches, pad_rows, text_to_class


def model_batch(inputs, targets, pad_id, device):
    """Inputs padded with the pad id and a 0/1 mask; targets (class name + </s>) padded with -100."""
    ids, mask = pad_rows(inputs, pad_id)
    labels, _ = pad_rows(targets, IGNORE_INDEX)
    as_tensor = lambda rows: torch.tensor(rows, dtype=torch.long, device=device)
    return as_tensor(ids), as_tensor(mask), as_tensor(labels)


@torch.no_grad()
def predict_generate(model, tok, inputs, class_names, class_tokens, batch_size, pad_id, eos_id, device, synced=False, part=None):
    max_new_tokens = max(len(t) for t in class_tokens)
    labels = [None] * len(inputs)
    texts = [None] * len(inputs)
    for batch, used in my_batches([len(r) for r in inputs], batch_size, part):
        ids, mask = pad_rows([inputs[i] for i in batch], pad_id)
        out = model.generate(
            input_ids=torch.tensor(ids, device=device),
            attention_mask=torch.tensor(mask, device=device),
            max_new_tokens=max_new_tokens,
            num_beams=1,
            do_sample=False,
            synced_gpus=synced,
        )
        for j, seq in enumerate(out.tolist() if used else []):
            end = seq.index(eos_id, 1) if eos_id in seq[1:] else len(seq)
            text = tok.decode(seq[1:end])
            texts[batch[j]] = text
            labels[batch[j]] = text_to_class(text, class_names)
    return {"labels": labels, "texts": texts}


@torch.no_grad()
def predict_rank(model, inputs, class_names, class_tokens, batch_size, pad_id, device, part=None):
    labels = [None] * len(inputs)
    probabilities = [None] * len(inputs)
    for batch, used in my_batches([len(r) for r in inputs], batch_size, part):
        ids, mask = pad_rows([inputs[i] for i in batch], pad_id)
        ids = torch.tensor(ids, device=device)
        mask = torch.tensor(mask, device=device)
        encoder_outputs = model.get_encoder()(input_ids=ids, attention_mask=mask)
        scores = []
        for tokens in class_tokens:
            target = torch.tensor([tokens] * len(batch), device=device)
            logits = model(encoder_outputs=encoder_outputs, attention_mask=mask, labels=target).logits.float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
            scores.append(logp.double().sum(-1))
        scores = torch.stack(scores, dim=-1)
        best = scores.argmax(-1).tolist()
        probs = torch.softmax(scores, dim=-1).tolist()
        for j, index in enumerate(batch if used else []):
            labels[index] = best[j]
            probabilities[index] = probs[j]
    return {"labels": labels, "texts": [None if l is None else class_names[l] for l in labels], "probabilities": probabilities}


def my_batches(lengths, batch_size, part):
    """(batch, used) pairs this rank decodes: all batches on one process, else its share (see the module's notes)."""
    batches = length_sorted_batches(lengths, batch_size)
    if part is None or part[1] == 1:
        return [(b, True) for b in batches]
    rank, world, synced = part
    rounds = -(-len(batches) // world)
    out = []
    for k in range(rounds):
        i = rank + k * world
        if i < len(batches):
            out.append((batches[i], True))
        elif synced and batches:
            out.append((batches[0], False))
    return out
