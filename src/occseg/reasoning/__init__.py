"""occseg.reasoning"""
