"""occseg.inference"""
