"""acc-explorer core: data, affinity cycle consistency training, run store and analysis.

The method: the ACC paper (ACC) section 3; the supplement (ABC) the ABC supplement. See DESIGN.md.
"""

__version__ = "0.1.0"
