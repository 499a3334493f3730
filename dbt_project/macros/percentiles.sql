{#- The percentile labels of the cache (extract/datasets.py PERCENTILES). -#}

{% macro iqb_percentiles() -%}
    {{- return([1, 5, 10, 25, 50, 75, 90, 95, 99]) -}}
{%- endmacro %}


{% macro percentile_columns(metric) -%}
    {#- ['download_p1', ..., 'download_p99'] -#}
    {%- set columns = [] -%}
    {%- for p in iqb_percentiles() -%}
        {%- do columns.append(metric ~ '_p' ~ p) -%}
    {%- endfor -%}
    {{- return(columns) -}}
{%- endmacro %}
