"""The job folder t5cls wrote (job.json and the files it names), read by the training script."""
import json
import os
import sys

JOB_FORMAT = "t5cls-accelerate-job"


class JobError(Exception):
    """A problem the user can act on: printed as one line, exit code 2."""


class Job:
    def __init__(self, file):
        self.file = os.path.abspath(file)
        self.dir = os.path.dirname(self.file)
        try:
            with open(self.file, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise JobError(f"{self.file}: cannot read the job ({e})")
        if data.get("format") != JOB_FORMAT or data.get("version") != 1:
            raise JobError(f'{self.file}: field "format" must be "{JOB_FORMAT}" version 1 (written by t5cls train --launcher accelerate)')
        self.data = data
        self.options = data["options"]
        self.launcher = data["launcher"]
        self.outputs = data["outputs"]
        self.checkpoint = data["checkpoint"]
        self.model = data["model"]
        self.tokenizer = data["tokenizer"]
        self.class_names = data["classNames"]
        self.run_name = data["runName"]
        self.model_name = data["modelName"]
        self.run_time = data["runTime"]
        self.record = data["record"]
        # A LoRA job (lora.py): r, alpha, dropout and target modules as t5cls resolved them, the base, the starting adapter.
        self.lora = data.get("lora")
        if self.lora is not None:
            for field in ("r", "alpha", "dropout", "targetModules", "adapter"):
                if field not in self.lora:
                    raise JobError(f'{self.file}: field "lora.{field}" is missing (written by t5cls train --launcher accelerate)')

    def path(self, p):
        """A path of the job: as is when absolute, else relative to the job folder."""
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(self.dir, p))

    def read_tokens(self):
        """t5cls's token ids of the examples and class names, or None when the job has none."""
        name = self.data["data"].get("tokens")
        if not name:
            return None
        try:
            with open(self.path(name), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise JobError(f"{self.path(name)}: cannot read the token ids ({e})")

    def read_split(self, name):
        file = self.path(self.data["data"][name])
        try:
            with open(file, encoding="utf-8") as f:
                rows = json.load(f)
        except (OSError, ValueError) as e:
            raise JobError(f"{file}: cannot read the {name} split ({e})")
        return [(str(r["text"]), int(r["label"])) for r in rows]


def fail(message, code=2):
    print(f"t5cls job: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
