"""LLM provider adapters. Each vendor SDK is imported only by its own module.

- ``anthropic``: :class:`AnthropicProvider` (``pip install "orra-di[anthropic]"``)
- ``openai``: :class:`OpenAIProvider` for OpenAI and compatible servers
  (``pip install "orra-di[openai]"``)
- ``resilience``: :class:`FallbackProvider`, :class:`DynamicProvider`
"""
