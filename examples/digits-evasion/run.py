"""Run the digits-evasion pipeline (pipeline.yaml) on a testbed.

train -> fgm and pgd at each eps -> infer on each adversarial set -> report, carried out
by the server. Prints each stage's progress, then the robustness table and where the
pipeline's HTML report is; exits 1 if a job failed.

    python examples/digits-evasion/run.py --address http://127.0.0.1:5000
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _driver  # noqa: E402

EPS = (0.05, 0.1, 0.2, 0.3)


def run(address: str, queue: str = _driver.DEFAULT_QUEUE, experiment: str = "digits-evasion",
        eps=EPS, epochs: int = 10, seed: int = 0, timeout: str = "1h",
        out=print) -> _driver.PipelineOutcome:
    def change(definition: dict) -> None:
        stages = definition["stages"]
        stages["train"]["params"].update(epochs=epochs, seed=seed)
        stages["attack"]["params"]["seed"] = seed
        stages["attack"]["grid"]["eps"] = list(eps)

    return _driver.run_pipeline(HERE, address, queue, experiment, timeout, change, out=out)


def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-evasion")
    parser.add_argument("--eps", default=",".join(f"{e:g}" for e in EPS),
                        help="comma-separated attack budgets (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    eps = [float(e) for e in args.eps.split(",")]
    outcome = run(args.address, args.queue, args.experiment, eps, args.epochs, args.seed,
                  args.timeout)
    return _driver.finish_pipeline(outcome, args.address)


if __name__ == "__main__":
    _driver.main_guard(main)
