"""Live truth: every served forecast logged (`predlog`), scored when its outcome bars arrive
(`scoring`, with the evaluation package), watched for drift (`drift`), summarised per version
as ok / watch / degraded (`status`), retrained on schedule through the registry's gates
(`retrain`), with an alert hook (`alerts`). See docs/monitoring.md."""
