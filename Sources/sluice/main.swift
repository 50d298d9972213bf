import SluiceRuntime
print("sluice")
