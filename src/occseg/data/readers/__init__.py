"""occseg.data.readers"""
