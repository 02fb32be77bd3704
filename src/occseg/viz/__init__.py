"""occseg.viz"""
