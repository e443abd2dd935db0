"""tmt: 2D-to-3D human pose lifting with the Two-step Mixed-Training strategy (TMT).

The science half of tmt-bench: data, features, backbones, losses, metrics, training strategies and complexity
counting. It never imports ``bench``.
"""

__version__ = "0.1.0"
