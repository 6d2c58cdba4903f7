-- Range of completion lengths (characters), for the histogram's bins; p99 caps the last bin.
select
    coalesce(min(completion_chars), 0) as lo,
    coalesce(quantile_cont(completion_chars, 0.99), 0) as hi,
    coalesce(max(completion_tokens), 0) as max_tokens,
    coalesce(quantile_cont(completion_tokens, 0.99), 0) as hi_tokens
from flags
