"""The local chat model's runtime (llama.cpp), isolated in a child process.

A native fault in llama.cpp (an illegal instruction, a segfault in a CPU kernel) kills the
process it runs in. So the chat service never loads it: `worker` runs the model in a child
process, `supervisor` starts it after checking the CPU (`cpu`), proves it with a self-test,
talks to it over pipes (`protocol`) and restarts it with back-off when it dies. A crash then
fails the one answer in progress (503 MODEL_CRASHED) instead of every chat route.
"""
