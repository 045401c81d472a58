select * from {{ ref('this_model_has_a_very_long_name_that_is_longer_than_sixty_three_chars') }}
