-- The prompt texts the export writes, in storage order; mix/export.py keeps the mix's prompts.
select prompt_id, prompt from prompts
