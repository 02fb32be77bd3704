"""occseg.compnet"""
