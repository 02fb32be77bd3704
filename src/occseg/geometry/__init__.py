"""occseg.geometry"""
