"""Run the digits-privacy example on a testbed through the Dioptra client.

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
from _driver import Step  # noqa: E402


def steps(seed: int = 0) -> list[Step]:
    overfit = Step("train overfit", "train", {
        "n_members": 100, "epochs": 200, "batch_size": 32,
        "model_architecture": "shallow_net", "seed": seed,
    })
    general = Step("train general", "train", {"n_members": 0, "epochs": 10, "seed": seed})
    mi_overfit = Step("membership_inference overfit", "membership_inference",
                      {"model_run_id": overfit, "seed": seed}, after=overfit)
    mi_general = Step("membership_inference general", "membership_inference",
                      {"model_run_id": general, "seed": seed}, after=general)
    inversion = Step("model_inversion general", "model_inversion",
                     {"model_run_id": general}, after=general)
    report = Step("report", "report", {"runs": [mi_overfit, mi_general, inversion]},
                  after=inversion)
    return [overfit, general, mi_overfit, mi_general, inversion, report]


def run(address: str, queue: str = _driver.DEFAULT_QUEUE, experiment: str = "digits-privacy",
        seed: int = 0, timeout: str = "1h", out=print) -> _driver.Outcome:
    return _driver.run_example(HERE, steps(seed), address, queue, experiment,
                               timeout=timeout, out=out)


def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-privacy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    return _driver.finish(run(args.address, args.queue, args.experiment, args.seed,
                              args.timeout))


if __name__ == "__main__":
    _driver.main_guard(main)
