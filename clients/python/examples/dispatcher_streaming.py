# Dachi "Streaming Pattern". expect: Stream completed: Herald streams tokens
import threading

from herald import Dispatcher

dispatcher = Dispatcher()
done = threading.Event()


def openai_stream(message):  # yields tokens as an LLM would
    for word in message.split():
        yield word + " "


def handle_stream_chunk(request_id: str, chunk: str):
    print(f"Stream chunk: {chunk}", end="", flush=True)


def handle_stream_complete(request_id: str, final_result: str):
    print(f"\nStream completed: {final_result.strip()}")
    done.set()


request_id = dispatcher.submit_stream(
    openai_stream, "Herald streams tokens", chunk_callback=handle_stream_chunk, completion_callback=handle_stream_complete
)
done.wait(30)  # Stream results are delivered via callbacks
dispatcher.close()
