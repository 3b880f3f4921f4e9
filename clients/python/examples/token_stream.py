# DBOS "LLM token streaming", followed live in a browser (token_stream.html). expect: wrote 9 tokens
import os
import time

import herald

wf = herald.connect().workflow(os.environ.get("WORKFLOW_ID", "chat-1"))
for token in "Herald streams tokens to the browser as they come .".split():  # an LLM's tokens
    wf.write_stream("tokens", token)
    time.sleep(0.05)
wf.close_stream("tokens")
print("wrote 9 tokens")
