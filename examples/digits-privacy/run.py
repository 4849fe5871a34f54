"""Run the digits-privacy example (pipeline.yaml) on a testbed.

train an overfit model (100 digits, 200 epochs) and a well-generalising one (all 1347
training digits) -> membership_inference on each, model_inversion on the second ->
report. Exits 1 if a job failed.

    python examples/digits-privacy/run.py --address http://127.0.0.1:5000
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _driver  # noqa: E402


def run(address: str, queue: str = _driver.DEFAULT_QUEUE, experiment: str = "digits-privacy",
        seed: int = 0, timeout: str = "1h", out=print) -> _driver.PipelineOutcome:
    def change(definition: dict) -> None:
        for stage in definition["stages"].values():
            if "seed" in stage["params"]:
                stage["params"]["seed"] = seed

    return _driver.run_pipeline(HERE, address, queue, experiment, timeout, change, out=out)

def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-privacy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    return _driver.finish_pipeline(run(args.address, args.queue, args.experiment,
                                       args.seed, args.timeout), args.address)


if __name__ == "__main__":
    _driver.main_guard(main)
