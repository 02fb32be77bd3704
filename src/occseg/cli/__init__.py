"""occseg.cli"""
