"""Run the digits-poisoning example (pipeline.yaml) on a testbed.

poison -> train on the poisoned digits; train on the clean digits (control) -> evaluate
both with the poison run's trigger (one table). Exits 1 if a job failed.

    python examples/digits-poisoning/run.py --address http://127.0.0.1:5000
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _driver  # noqa: E402


def run(address: str, queue: str = _driver.DEFAULT_QUEUE,
        experiment: str = "digits-poisoning", target_class: int = 0,
        poison_fraction: float = 0.1, seed: int = 0, timeout: str = "1h",
        out=print) -> _driver.PipelineOutcome:
    def change(definition: dict) -> None:
        stages = definition["stages"]
        stages["poison"]["params"].update(target_class=target_class,
                                          poison_fraction=poison_fraction, seed=seed)
        stages["poisoned"]["params"]["seed"] = seed
        stages["clean"]["params"]["seed"] = seed

    return _driver.run_pipeline(HERE, address, queue, experiment, timeout, change, out=out)

def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-poisoning")
    parser.add_argument("--target-class", type=int, default=0)
    parser.add_argument("--poison-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    return _driver.finish_pipeline(run(
        args.address, args.queue, args.experiment, args.target_class, args.poison_fraction,
        args.seed, args.timeout), args.address)


if __name__ == "__main__":
    _driver.main_guard(main)
