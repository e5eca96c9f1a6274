"""Behavioural test doubles of the systems hongbao must interoperate with."""
