"""Demo IVR: a SIP media application handler written exactly like an AWS Lambda function.

``chimevoice.demo.handler:handler`` plays ``welcome.wav`` then ``goodbye.wav`` from the
bucket named by ``GREETING_BUCKET`` (default ``demo-prompts``) and hangs up. Create the
prompts with ``scripts/make-demo-audio DIR`` and map the bucket to DIR in the config.
"""
