"""Conscious Ducats: stream processing for individually identified coins.

Data flows schemas/ (event contracts) -> streams/ (Faust agents) -> sinks/
(Postgres, Redis) -> ducats.api. This package holds what they share: settings,
the error tree, logging, and the ``ducats`` command line.
"""
