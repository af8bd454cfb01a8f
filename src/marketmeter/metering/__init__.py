"""The metering rules: what AWS's Metering Service decides, with no HTTP and no SQL."""
