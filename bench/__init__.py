"""bench: declarative studies that reproduce every table of the TMT paper on top of ``tmt``."""
