"""occseg.backbones"""
