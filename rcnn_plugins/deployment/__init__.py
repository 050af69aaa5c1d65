"""Deployment: export the predict path (ONNX, torch.export) and run exported models."""
