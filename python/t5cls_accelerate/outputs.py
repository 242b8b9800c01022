"""
What a job writes, in t5cls's formats: the run log (t5cls src/train/run_log.ts: `[options]` and `[epoch N]` blocks,
numbers written as JavaScript writes them so `t5cls report` reads back the same values), TensorBoard event files
(TFRecord-framed Event protos with scalar summaries, as src/train/tensorboard.ts writes them; no tensorboard
package needed) and checkpoint folders (HF model folder + t5cls.json, written under a temp name and renamed).
"""
import datetime
import json
import os
import shutil
import socket
import struct
import time
from decimal import Decimal


def js_number(x):
    """`String(x)` of a JavaScript number: shortest round-trip digits, JavaScript's exponent rules."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        x = float(x)
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    _, all_digits, exp = Decimal(repr(abs(x))).as_tuple()
    text = "".join(map(str, all_digits))
    digits = text.rstrip("0")
    exp += len(text) - len(digits)
    k = len(digits)
    n = k + exp
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    e_text = ("+" if e >= 0 else "-") + str(abs(e))
    return sign + (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + e_text


def iso_now():
    """`new Date().toISOString()`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


EPOCH_FIELDS = [
    "learning_rate",
    "train_loss",
    "train_accuracy",
    "dev_accuracy",
    "dev_macro_f1",
    "dev_micro_f1",
    "dev_weighted_f1",
]


class RunLog:
    """Appends to the run log, fsyncing each block, as t5cls's RunLog does."""

    def __init__(self, file):
        self.file = file
        os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)

    def options(self, rendered_lines, extra):
        """`rendered_lines`: the options block t5cls rendered; `extra`: name → plain text or number values."""
        lines = [f"[options] {iso_now()}", *rendered_lines]
        for name, value in extra.items():
            lines.append(f"{name}: {js_number(value) if isinstance(value, (int, float)) else value}")
        self._append("\n".join(lines) + "\n\n")

    def epoch(self, n, metrics):
        names = [f for f in EPOCH_FIELDS if f in metrics] + [f for f in metrics if f not in EPOCH_FIELDS]
        lines = [f"[epoch {n}] {iso_now()}"]
        for name in names:
            if metrics[name] is not None:
                lines.append(f"{name}: {js_number(metrics[name])}")
        self._append("\n".join(lines) + "\n\n")

    def line(self, text):
        self._append(text + "\n")

    def _append(self, text):
        with open(self.file, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


# ---- TensorBoard event files ----

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint((field << 3) | wire)


def _bytes_field(field, data):
    return _key(field, 2) + _varint(len(data)) + data


def _event(wall_time, step, file_version=None, session_start=False, scalar=None):
    out = _key(1, 1) + struct.pack("<d", wall_time)
    if step != 0:
        out += _key(2, 0) + _varint(step)
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    elif session_start:
        out += _bytes_field(7, _key(1, 0) + _varint(1))
    else:
        tag, value = scalar
        summary_value = _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", value)
        out += _bytes_field(5, _bytes_field(1, summary_value))
    return out


class SummaryWriter:
    """Scalars to `events.out.tfevents.<seconds>.<host>` in `log_dir`, one append per record."""

    def __init__(self, log_dir, purge_step=None):
        os.makedirs(log_dir, exist_ok=True)
        start = time.time()
        self.file = os.path.join(log_dir, f"events.out.tfevents.{int(start)}.{socket.gethostname()}")
        self.f = open(self.file, "ab")
        self._write(_event(start, 0, file_version="brain.Event:2"))
        if purge_step is not None:
            self._write(_event(start, purge_step, session_start=True))

    def add_scalar(self, tag, value, step):
        self._write(_event(time.time(), int(step), scalar=(tag, float(value))))

    def flush(self):
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self):
        if self.f is not None:
            self.flush()
            self.f.close()
            self.f = None

    def _write(self, event):
        header = struct.pack("<Q", len(event))
        record = header + struct.pack("<I", _masked_crc(header)) + event + struct.pack("<I", _masked_crc(event))
        self.f.write(record)
        self.f.flush()


# ---- checkpoints ----


def write_json(file, value):
    tmp = f"{file}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, file)


def save_checkpoint(folder, tensors, job, meta):
    """
    An HF model folder as t5cls writes it: model.safetensors (HF names, float32), the config.json text t5cls wrote
    for this model (both transformers 4.x and 5.x read its head right), generation_config.json, the tokenizer files
    and t5cls.json.
    """
    from safetensors.torch import save_file

    def write(tmp):
        save_file(tensors, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(job.path(job.checkpoint["config"]), os.path.join(tmp, "config.json"))
        write_json(os.path.join(tmp, "generation_config.json"), job.checkpoint["generationConfig"])

    _write_checkpoint(folder, job, meta, write)


def save_adapter_checkpoint(folder, tensors, job, meta):
    """A LoRA checkpoint as t5cls writes it: PEFT's adapter folder (lora.py), the tokenizer files and t5cls.json."""
    from lora import write_adapter

    _write_checkpoint(folder, job, meta, lambda tmp: write_adapter(tmp, tensors, job))


def _write_checkpoint(folder, job, meta, write):
    """Written under `.NAME.partial-PID` and renamed: never half-written, never overwritten."""
    if os.path.exists(folder):
        raise RuntimeError(f"{folder} already exists; a checkpoint is never overwritten")
    parent = os.path.dirname(os.path.abspath(folder))
    tmp = os.path.join(parent, f".{os.path.basename(folder)}.partial-{os.getpid()}")
    os.makedirs(parent, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        write(tmp)
        tokenizer_dir = job.path(job.tokenizer)
        for name in sorted(os.listdir(tokenizer_dir)):
            shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(tmp, name))
        write_json(os.path.join(tmp, "t5cls.json"), meta)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
