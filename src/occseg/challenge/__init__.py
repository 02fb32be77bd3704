"""occseg.challenge"""
