"""occseg.features"""
