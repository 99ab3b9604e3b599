# walsim-sampler: the observer's sampler (libpq, non-blocking): every node
# sampled on shared ticks, samples.jsonl lines on standard output.
PROGRAMS += walsim-sampler
walsim-sampler_SRCS := ref/sampler/main.c ref/sampler/node.c ref/sampler/line.c
walsim-sampler_LIBS := $(PQ_LIBS) -lm

# unit tests of the lines and the time axis (tests/unit/test_sampler_line.c)
test_sampler_line_SRCS := ref/sampler/line.c
