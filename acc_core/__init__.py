"""acc-explorer core: data, affinity cycle consistency training, run store and analysis.

The method: seed 000 (ACC) section 3; the supplement (ABC) seed 001. See DESIGN.md.
"""

__version__ = "0.1.0"
