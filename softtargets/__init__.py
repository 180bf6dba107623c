"""softtargets: do soft targets bring unlearning closer to retraining than hard labels?"""

__version__ = "0.1.0"
