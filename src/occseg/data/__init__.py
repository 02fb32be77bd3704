"""occseg.data"""
