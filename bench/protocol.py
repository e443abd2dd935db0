"""The two training protocols a profile may name (``protocol:`` in a study's profile, ``--protocol`` on
``bench run`` / ``bench report``), each a set of configuration settings.

- ``reference``: what the reference implementations do, so that a paper run is comparable with the paper's
  numbers: train on every training recording (no held-out validation), keep the epoch with the best test
  MPJPE, and, for MixSTE-based cells only, scale every gradient by the loss (``loss.backward(loss.detach())``
  in MixSTE's training script).
- ``honest``: the control docs/deviations.md recommends: 10 % of the training recordings held out, the epoch
  with the best validation MPJPE kept, plain gradients. The test set is only looked at once, at the end.
"""

from __future__ import annotations

from typing import Any, Literal

from tmt.training.defaults import GRADIENT_QUIRK_BACKBONES

Protocol = Literal["reference", "honest"]
PROTOCOLS: tuple[str, ...] = ("reference", "honest")

DESCRIPTIONS = {
    "reference": "reference (train on all training subjects, no held-out validation; weights of the epoch "
    "with the best test MPJPE; MixSTE cells: gradients scaled by the loss, as its script does)",
    "honest": "honest (10 % of the training recordings held out; weights of the epoch with the best "
    "validation MPJPE; plain gradients; the test set is seen once, at the end)",
}


def protocol_settings(protocol: str, backbone: str) -> dict[str, Any]:
    """The dotted configuration settings ``protocol`` stands for, for a cell of ``backbone``."""
    if protocol == "reference":
        return {
            "data.validation_fraction": 0.0,
            "eval.selection": "best_test",
            "optim.scale_grad_by_loss": backbone in GRADIENT_QUIRK_BACKBONES,
        }
    if protocol == "honest":
        return {
            "data.validation_fraction": 0.1,
            "eval.selection": "best_val",
            "optim.scale_grad_by_loss": False,
        }
    raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")


PROTOCOL_FIELDS = tuple(protocol_settings("reference", "mixste"))
"""The configuration fields a protocol sets: a profile that names a protocol may not set them itself."""
