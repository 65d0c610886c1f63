"""Job queues: SAQ on Redis for pods that scale out, an in-process queue for the embedded default.

Both call a handler with a job id and nothing else: the job's state lives in the database.
"""
