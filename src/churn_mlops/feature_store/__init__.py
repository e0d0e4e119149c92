"""Feast access of churn-mlops: feature definitions, the repository handle, online reads.

``config`` validates ``parameters_feature_store.yml``; ``definitions`` builds the Feast entity,
feature views and feature service from it and the feature list; ``repository`` opens the
feature repository folder (``feature_repo/``) and wraps the Feast SDK calls the pipelines and
the serving app make. See docs/feature_store.md.
"""
