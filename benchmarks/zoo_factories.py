"""Factories ``benchmarks/zoo.py`` hands to ``convcalc inspect`` (``path.py:function`` with ``--kwargs``)."""

from __future__ import annotations


def timm_model(model_name: str):
    """A timm model, untrained."""
    import timm

    return timm.create_model(model_name, pretrained=False)
