def main(argv=None):
    print("neurocore")
