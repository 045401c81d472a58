{%- set base = codegen.generate_base_model(source_name='raw', table_name='orders') -%}
{%- set yaml = codegen.generate_model_yaml(model_names=['a_orders']) -%}
{%- set ctes = codegen.generate_model_import_ctes(model_name='a_compare_relations') -%}
select {{ (base or '') | length > 0 }} as has_base, {{ (yaml or '') | length > 0 }} as has_yaml
