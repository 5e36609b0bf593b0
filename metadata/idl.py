"""The service contract, loaded once from the IDL shipped beside this module."""
from pathlib import Path

import thriftpy2

metadata_thrift = thriftpy2.load(str(Path(__file__).with_name("metadata.thrift")), module_name="metadata_thrift")
