"""
t5cls's training recipe in Python, number for number: the seeded generator (t5cls src/random.ts: xoshiro128** 1.1
seeded by splitmix32), the epoch order (a uniform permutation, or the class-balanced weighted sampler with
replacement of src/train/sampler.ts), tokenization as t5cls does it (prefix + text, SentencePiece ids, the closing
</s> kept when an input is cut), class names as target text, batches padded to their own longest row (labels
padded with -100), the learning-rate warm-up and the classification metrics (src/eval/metrics.ts).

Nothing here imports torch: the job's checks and the tests use it without a deep-learning stack.
"""
import os
import re

M32 = 0xFFFFFFFF
IGNORE_INDEX = -100
INVALID_PREDICTION = -1


def _splitmix32(seed):
    state = seed & M32

    def nxt():
        nonlocal state
        state = (state + 0x9E3779B9) & M32
        z = state
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
        return (z ^ (z >> 16)) & M32

    return nxt


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Rng:
    """xoshiro128** with t5cls's seeding: the same seed gives the same draws as t5cls's Rng."""

    def __init__(self, seed):
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        lo = _splitmix32(seed & M32)
        s = [lo() for _ in range(4)]
        hi_bits = seed // 2**32
        if hi_bits != 0:
            hi = _splitmix32(hi_bits & M32)
            s = [w ^ hi() for w in s]
        if all(w == 0 for w in s):
            s[0] = 1
        self.s = s

    def get_state(self):
        return {"algorithm": "xoshiro128**", "s": list(self.s)}

    def set_state(self, state):
        if state.get("algorithm") != "xoshiro128**" or len(state.get("s", [])) != 4:
            raise ValueError("expected a xoshiro128** state of four words")
        self.s = [int(w) & M32 for w in state["s"]]

    def next_uint32(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 11)
        return result

    def int(self, n):
        """A uniform integer in [0, n) without modulo bias (draws past the last full multiple of n are redrawn)."""
        limit = 2**32 - (2**32 % n)
        u = self.next_uint32()
        while u >= limit:
            u = self.next_uint32()
        return u % n

    def shuffle(self, arr):
        for i in range(len(arr) - 1, 0, -1):
            j = self.int(i + 1)
            arr[i], arr[j] = arr[j], arr[i]
        return arr


def random_permutation(n, rng):
    return rng.shuffle(list(range(n)))


def weighted_random_sampler(labels, rng, num_samples=None):
    """len(labels) draws with replacement, each class equally likely, then an example uniformly within it."""
    num_samples = len(labels) if num_samples is None else num_samples
    by_class = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    classes = [by_class[c] for c in sorted(by_class)]
    out = []
    for _ in range(num_samples):
        members = classes[rng.int(len(classes))]
        out.append(members[rng.int(len(members))])
    return out


def epoch_order(labels, rng, weighted):
    return weighted_random_sampler(labels, rng) if weighted else random_permutation(len(labels), rng)


def chunk(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def scheduled_lr(base_lr, step, warmup):
    """Linear warm-up from 0 to the base rate over `warmup` optimizer steps (step counts from 0), constant after."""
    return base_lr * (step + 1) / warmup if warmup > 0 and step < warmup else base_lr


def length_sorted_batches(lengths, batch_size):
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return chunk(order, batch_size)


class T5Ids:
    """
    The T5 tokenizer of a folder, giving t5cls's ids: transformers' T5 tokenizer supplies the special tokens; the
    text between them is encoded by SentencePiece itself (`spiece.model`) where the sentencepiece package is
    installed, as t5cls does (transformers 5.x's own T5 tokenizer differs from SentencePiece on a few texts);
    otherwise transformers' tokenizer encodes it, and `exact` is False.
    """

    def __init__(self, folder):
        import transformers

        try:
            self.hf = transformers.T5TokenizerFast.from_pretrained(folder)
        except Exception:
            self.hf = transformers.T5Tokenizer.from_pretrained(folder)
        self.eos_id = self.hf.eos_token_id
        self.pad_id = self.hf.pad_token_id
        unk = self.hf.unk_token_id
        specials = {"<pad>": self.pad_id, "</s>": self.eos_id, "<unk>": unk}
        for n in range(1000):
            token = f"<extra_id_{n}>"
            token_id = self.hf.convert_tokens_to_ids(token)
            if token_id is None or token_id == unk:
                break
            specials[token] = token_id
        self.special_ids = set(specials.values())
        self.specials = specials
        alternatives = sorted(specials, key=len, reverse=True)
        self.split = re.compile("(" + "|".join(re.escape(t) for t in alternatives) + ")")
        self.sp = None
        spiece = os.path.join(folder, "spiece.model")
        if os.path.exists(spiece):
            try:
                import sentencepiece

                self.sp = sentencepiece.SentencePieceProcessor(model_file=spiece)
            except ImportError:
                self.sp = None
        self.exact = self.sp is not None

    def encode(self, text):
        """Ids of `text` followed by </s> (HF add_special_tokens)."""
        if self.sp is None:
            return list(self.hf(text).input_ids)
        ids = []
        for i, part in enumerate(self.split.split(text)):
            if i % 2 == 1:
                ids.append(self.specials[part])
            elif part:
                ids.extend(self.sp.encode(part))
        ids.append(self.eos_id)
        return ids

    def decode(self, ids):
        """Text of `ids` with the special tokens left out (HF skip_special_tokens)."""
        kept = [i for i in ids if i not in self.special_ids]
        if self.sp is None:
            return self.hf.decode(kept, skip_special_tokens=True)
        return self.sp.decode(kept)


def encode_input(tok, text, prefix, max_length):
    """HF `tokenizer(text, max_length=L, truncation=True)` for T5: the pieces are cut, the closing </s> is kept."""
    ids = tok.encode(prefix + text)
    if len(ids) <= max_length:
        return ids
    return ids[: max_length - 1] + [ids[-1]]


def text_to_class(text, class_names):
    if text in class_names:
        return class_names.index(text)
    norm = text.strip().lower()
    for i, name in enumerate(class_names):
        if name.strip().lower() == norm:
            return i
    return INVALID_PREDICTION


def pad_rows(rows, pad_value):
    longest = max([1] + [len(r) for r in rows])
    ids = [r + [pad_value] * (longest - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (longest - len(r)) for r in rows]
    return ids, mask


def classification_metrics(y_true, y_pred, num_classes):
    """scikit-learn's accuracy and F1 (labels=range(n), zero_division=0); -1 is an invalid prediction."""
    confusion = [[0] * (num_classes + 1) for _ in range(num_classes)]
    invalid = 0
    for t, p in zip(y_true, y_pred):
        if p == INVALID_PREDICTION:
            confusion[t][num_classes] += 1
            invalid += 1
        else:
            confusion[t][p] += 1

    def div(a, b):
        return 0 if b == 0 else a / b

    f1s, supports = [], []
    tp_sum = fp_sum = fn_sum = 0
    for c in range(num_classes):
        tp = confusion[c][c]
        support = sum(confusion[c])
        predicted = sum(confusion[t][c] for t in range(num_classes))
        fp, fn = predicted - tp, support - tp
        tp_sum, fp_sum, fn_sum = tp_sum + tp, fp_sum + fp, fn_sum + fn
        f1s.append(div(2 * tp, 2 * tp + fp + fn))
        supports.append(support)
    n = len(y_true)
    return {
        "accuracy": tp_sum / n,
        "macro_f1": sum(f1s) / num_classes,
        "micro_f1": div(2 * tp_sum, 2 * tp_sum + fp_sum + fn_sum),
        "weighted_f1": div(sum(f * s for f, s in zip(f1s, supports)), n),
        "invalid": invalid,
    }
